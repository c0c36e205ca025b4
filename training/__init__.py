"""Training: real captions in, a versioned model artifact out."""
