"""Bounds on sizes and charges that no real detector or machine passes: the typed sections hold
every value to them, so a typo fails at validation, not after an hour of work."""

MAX_FRAME_EDGE = 16384  # pixels
MAX_WINDOW = 8192  # network window or tile edge, pixels
# pixels through the network in one batch (batch x window^2): 2^26 px of U-Net activations fill
# ~100 GB, the largest GPUs
MAX_BATCH_PIXELS = 2**26
# no CCD pixel holds more than ~1e6 e- (full wells are 1e4-1e6): a bound on every charge per pixel
MAX_PIXEL_CHARGE_E = 1e7
