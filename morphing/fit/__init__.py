"""Finding the maps: key points, the start, the network, the loss terms and the descent."""
