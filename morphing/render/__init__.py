"""Frames from maps: the dense warp, the formula, the detail blend, and the engines that compute them."""
