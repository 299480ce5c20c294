"""The sibling tools on the same differentiable core: hybrid images, sub-pixel shifts, geometric transfer."""
