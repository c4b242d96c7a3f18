"""Small models defined here (no torchvision/timm): they train in seconds on a CPU."""

from interpbook.models.basic import MLP, Linear, accuracy
from interpbook.models.cnn import SmallCNN
from interpbook.models.recurrent import DTNet

__all__ = ["DTNet", "MLP", "Linear", "SmallCNN", "accuracy"]
