"""phoneme-vgpds."""
