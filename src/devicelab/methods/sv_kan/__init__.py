"""sv-kan: text-independent speaker verification with a keyword adversarial network (arXiv 1908.02612).

The public pieces: the config, the SE network and keyword adversary, the losses, trials and scoring, the
GMM-UBM baseline, the training recipe, and the deployable embedder with enrolment and ONNX export.
``experiment.py`` (plan, run, claims, ``EXPERIMENT``) is read by the registry only.
"""

from devicelab.methods.sv_kan.config import SvKanConfig
from devicelab.methods.sv_kan.data import SpeechSet, SvKanDataError, SvTask, load_corpus, load_librispeech
from devicelab.methods.sv_kan.export import SpeakerEmbedder, SpeakerVerifier, export_run, load_trained
from devicelab.methods.sv_kan.gmm_ubm import DiagonalGMM, map_adapt_means, mfcc_frames, train_ubm
from devicelab.methods.sv_kan.losses import GE2ELoss, ge2e_similarity, triplet_loss, triplet_mask
from devicelab.methods.sv_kan.model import KeywordAdversary, ResNetSE
from devicelab.methods.sv_kan.recipe import SpeakerSystem, train_stage
from devicelab.methods.sv_kan.trials import Trials, build_trials, cosine_scores, keyword_probe

__all__ = [
    "DiagonalGMM",
    "GE2ELoss",
    "KeywordAdversary",
    "ResNetSE",
    "SpeakerEmbedder",
    "SpeakerSystem",
    "SpeakerVerifier",
    "SpeechSet",
    "SvKanConfig",
    "SvKanDataError",
    "SvTask",
    "Trials",
    "build_trials",
    "cosine_scores",
    "export_run",
    "ge2e_similarity",
    "keyword_probe",
    "load_corpus",
    "load_librispeech",
    "load_trained",
    "map_adapt_means",
    "mfcc_frames",
    "train_stage",
    "train_ubm",
    "triplet_loss",
    "triplet_mask",
]
