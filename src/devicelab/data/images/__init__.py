"""Image helpers for the glyph corpora: fonts, backgrounds, glyph rendering."""
