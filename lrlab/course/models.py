"""The three networks the course trains, one per source, each exactly as its source writes it.

=================  ===========================================  =========  ==========  ==========
model              source                                       input      parameters  output
=================  ===========================================  =========  ==========  ==========
``LeNet``          d2l, "Learning Rate Scheduling", ``net_fn``  1x28x28    61,706      10 logits
``SimpleModel``    the WarmupMultiFactorScheduler tutorial      3x32x32    332,778     10 logits
``ImprovedCNN``    the MNIST StepLR/CosineAnnealingLR tutorial  1x28x28    206,922     10 logits
=================  ===========================================  =========  ==========  ==========

Layer for layer (names, sizes, order of operations) the sources' code; ``tests/test_models.py`` holds
the two tutorials' classes as published and checks these against them (same parameters, same
outputs after the same seed). All use PyTorch's default initialisation, as the sources do (the d2l
section's ``train`` does not re-initialise the net).
"""

from __future__ import annotations

from torch import nn
from torch.nn import functional as F

__all__ = ["LeNet", "SimpleModel", "ImprovedCNN"]


class LeNet(nn.Sequential):
    """LeNet-5 with ReLU and max pooling: exactly ``net_fn()`` of d2l's "Learning Rate Scheduling" section.

    An ``nn.Sequential`` subclass with the same 12 layers in the same order as d2l's ``net_fn``, so
    ``LeNet().state_dict()`` has d2l's keys (``0.weight`` ... ``11.bias``) and, after the same
    ``torch.manual_seed``, the same initial weights::

        Conv2d(1, 6, 5, padding=2), ReLU, MaxPool2d(2, 2),    # 6 x 28 x 28 -> 6 x 14 x 14
        Conv2d(6, 16, 5), ReLU, MaxPool2d(2, 2),              # 16 x 10 x 10 -> 16 x 5 x 5
        Flatten, Linear(400, 120), ReLU, Linear(120, 84), ReLU, Linear(84, 10)

    Parameters: 156 + 2,416 + 48,120 + 10,164 + 850 = 61,706.
    Input ``N x 1 x 28 x 28`` (Fashion-MNIST), output ``N x 10`` logits.

    Reference: Zhang, Lipton, Li, Smola, *Dive into Deep Learning*, section 12.11 (LeCun et al. 1998).
    """

    def __init__(self) -> None:
        super().__init__(
            nn.Conv2d(1, 6, kernel_size=5, padding=2), nn.ReLU(),
            nn.MaxPool2d(kernel_size=2, stride=2),
            nn.Conv2d(6, 16, kernel_size=5), nn.ReLU(),
            nn.MaxPool2d(kernel_size=2, stride=2),
            nn.Flatten(),
            nn.Linear(16 * 5 * 5, 120), nn.ReLU(),
            nn.Linear(120, 84), nn.ReLU(),
            nn.Linear(84, 10),
        )


class SimpleModel(nn.Module):
    """The CNN of the WarmupMultiFactorScheduler tutorial, exactly as published: two 3x3 convolutions, no pooling.

    ::

        conv1 Conv2d(3, 16, 3, stride=1, padding=1) -> relu ReLU(inplace=True)   # 16 x 32 x 32
        conv2 Conv2d(16, 32, 3, stride=1, padding=1) -> relu                     # 32 x 32 x 32
        flatten (x.view(x.size(0), -1)) -> fc Linear(32 * 32 * 32, 10)

    Parameters: 448 + 4,640 + 327,690 = 332,778 (nearly all in ``fc``, which sees the full-resolution
    feature map). Input ``N x 3 x 32 x 32`` (the tutorial names no dataset; the course uses CIFAR-10,
    whose images have this shape: our choice, see chapter 7), output ``N x 10`` logits.
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, kernel_size=3, stride=1, padding=1)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(16, 32, kernel_size=3, stride=1, padding=1)
        self.fc = nn.Linear(32 * 32 * 32, 10)

    def forward(self, x):
        x = self.conv1(x)
        x = self.relu(x)
        x = self.conv2(x)
        x = self.relu(x)
        x = x.reshape(x.size(0), -1)  # the tutorial's x.view(...); reshape also takes channels_last input
        x = self.fc(x)
        return x


class ImprovedCNN(nn.Module):
    """The MNIST tutorial's CNN (StepLR vs CosineAnnealingLR), exactly as published by default.

    ::

        conv1 Conv2d(1, 16, 3, padding=1) -> relu -> pool MaxPool2d(2, 2)    # 16 x 14 x 14
        conv2 Conv2d(16, 32, 3, padding=1) -> relu -> pool                   # 32 x 7 x 7
        dropout Dropout(0.3) -> flatten -> fc1 Linear(1568, 128) -> relu
        dropout -> fc2 Linear(128, 10)

    One ``nn.Dropout`` module and one ``nn.MaxPool2d`` module are each applied twice, as in the
    tutorial. Parameters: 160 + 4,640 + 200,832 + 1,290 = 206,922.
    Input ``N x 1 x 28 x 28`` (normalised MNIST), output ``N x 10`` logits.

    Two knobs serve the tutorial's own extension exercises; their defaults are the published model:

    Args:
        dropout: drop probability, in [0, 1) (the exercise tries 0.2 and 0.5; published: 0.3).
        batch_norm: insert ``BatchNorm2d`` after each convolution, before its ReLU (the exercise "add
            Batch Normalization"; the tutorial gives no code for it, so where the layers go is the
            course's choice). Adds 2 x (16 + 32) = 96 parameters.
    """

    def __init__(self, dropout: float = 0.3, batch_norm: bool = False) -> None:
        super().__init__()
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
            raise ValueError(f"ImprovedCNN: dropout must be a probability in [0, 1); got dropout={dropout!r}")
        self.batch_norm = bool(batch_norm)
        self.conv1 = nn.Conv2d(1, 16, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, kernel_size=3, padding=1)
        if self.batch_norm:
            self.bn1, self.bn2 = nn.BatchNorm2d(16), nn.BatchNorm2d(32)
        self.dropout = nn.Dropout(float(dropout))
        self.pool = nn.MaxPool2d(2, 2)
        self.fc1 = nn.Linear(32 * 7 * 7, 128)
        self.fc2 = nn.Linear(128, 10)

    def _conv(self, x, conv, bn_name):
        x = conv(x)
        if self.batch_norm:
            x = getattr(self, bn_name)(x)
        return F.relu(x)

    def forward(self, x):
        x = self.pool(self._conv(x, self.conv1, "bn1"))  # 16 x 14 x 14
        x = self.pool(self._conv(x, self.conv2, "bn2"))  # 32 x 7 x 7
        x = self.dropout(x)
        x = x.reshape(-1, 32 * 7 * 7)  # the tutorial's x.view(...); reshape also takes channels_last input
        x = F.relu(self.fc1(x))
        x = self.dropout(x)
        x = self.fc2(x)
        return x
