"""Targets of TensorFlow Probability's Inference Gym (``inference_gym``), with the ground truth it ships."""
