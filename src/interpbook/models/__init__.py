"""Small models defined here (no torchvision/timm): they train in seconds on a CPU."""

from interpbook.models.basic import MLP, Linear, accuracy, eval_mode
from interpbook.models.cnn import SmallCNN
from interpbook.models.recurrent import DTNet
from interpbook.models.segmentation import FUSIONS, FusionFCN
from interpbook.models.transformer import TinyTransformer, next_token_loss, token_losses
from interpbook.models.vision import SmallResNet, TinyViT

__all__ = ["DTNet", "FUSIONS", "FusionFCN", "MLP", "Linear", "SmallCNN", "SmallResNet", "TinyTransformer", "TinyViT",
           "accuracy", "eval_mode", "next_token_loss", "token_losses"]
