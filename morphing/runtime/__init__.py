"""The process around the numerics: TensorFlow's start-up, XLA's compile cache, helper threads and processes."""
