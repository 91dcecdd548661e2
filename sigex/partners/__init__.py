"""Reference partners, synthetic data and the demo: users of the libraries, not part of them."""
