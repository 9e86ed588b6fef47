"""Audio in and out: decoding with bounded reads, resampling, framing, and waveform augmentation."""
