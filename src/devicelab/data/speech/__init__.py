"""Speech synthesis for the offline corpora: engines, phone tables and the committed text lists."""

from devicelab.data.speech.engines import (
    ENGINES,
    EngineError,
    EspeakEngine,
    FestivalEngine,
    FliteEngine,
    MbrolaEngine,
    Phone,
    Rendering,
    SpeechEngine,
    Word,
    get_engine,
)

__all__ = [
    "ENGINES",
    "EngineError",
    "EspeakEngine",
    "FestivalEngine",
    "FliteEngine",
    "MbrolaEngine",
    "Phone",
    "Rendering",
    "SpeechEngine",
    "Word",
    "get_engine",
]
