"""The three networks the course trains, one per source.

=================  ===========================================  =========  ==================  ==========
model              source                                       input      parameters          output
=================  ===========================================  =========  ==================  ==========
``LeNet``          d2l, "Learning Rate Scheduling", ``net_fn``  1x28x28    61,706              10 logits
``SimpleModel``    the WarmupMultiFactorScheduler tutorial      3x32x32    268,650             10 logits
``ImprovedCNN``    the MNIST StepLR/CosineAnnealingLR tutorial  1x28x28    421,642 (+192 BN)   10 logits
=================  ===========================================  =========  ==================  ==========

All use PyTorch's default initialisation, as the sources do (the d2l section's ``train`` does not
re-initialise the net).
"""

from __future__ import annotations

from torch import nn

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
    """The small two-convolution CNN of the WarmupMultiFactorScheduler tutorial, for CIFAR-10.

    The tutorial's exact layer sizes could not be retrieved offline; this is the usual two-conv
    tutorial CNN for 3x32x32 input that its description fits (two 3x3 convolutions with ReLU and 2x2
    max pooling, then two fully connected layers)::

        conv1 Conv2d(3, 16, 3, padding=1)  -> ReLU -> MaxPool2d(2)   # 16 x 16 x 16
        conv2 Conv2d(16, 32, 3, padding=1) -> ReLU -> MaxPool2d(2)   # 32 x 8 x 8
        flatten -> fc1 Linear(2048, 128) -> ReLU -> fc2 Linear(128, 10)

    Parameters: 448 + 4,640 + 262,272 + 1,290 = 268,650. Small enough for the laptop profile's CPU runs.
    Input ``N x 3 x 32 x 32``, output ``N x 10`` logits.
    """

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 16, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(32 * 8 * 8, 128), nn.ReLU(),
            nn.Linear(128, 10),
        )

    def forward(self, x):
        return self.classifier(self.features(x))


class ImprovedCNN(nn.Module):
    """The MNIST tutorial's CNN (StepLR vs CosineAnnealingLR): two conv blocks, dropout, two dense layers.

    The tutorial's exact code could not be retrieved offline; this is the two-conv MNIST CNN with
    dropout that its description fits::

        Conv2d(1, 32, 3, padding=1)  [-> BatchNorm2d(32)] -> ReLU -> MaxPool2d(2)   # 32 x 14 x 14
        Conv2d(32, 64, 3, padding=1) [-> BatchNorm2d(64)] -> ReLU -> MaxPool2d(2)   # 64 x 7 x 7
        Flatten -> Dropout(dropout) -> Linear(3136, 128) -> ReLU -> Dropout(dropout) -> Linear(128, 10)

    Parameters: 320 + 18,496 + 401,536 + 1,290 = 421,642; ``batch_norm=True`` (the tutorial's
    BatchNorm exercise) inserts the two bracketed layers, adding 2 x (32 + 64) = 192 parameters.
    Input ``N x 1 x 28 x 28`` (normalised MNIST), output ``N x 10`` logits.

    Args:
        dropout: drop probability of both ``Dropout`` layers, in [0, 1).
        batch_norm: insert ``BatchNorm2d`` after each convolution.
    """

    def __init__(self, dropout: float = 0.3, batch_norm: bool = False) -> None:
        super().__init__()
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
            raise ValueError(f"ImprovedCNN: dropout must be a probability in [0, 1); got dropout={dropout!r}")
        self.dropout = float(dropout)
        self.batch_norm = bool(batch_norm)

        def block(c_in: int, c_out: int) -> list:
            layers = [nn.Conv2d(c_in, c_out, kernel_size=3, padding=1)]
            if batch_norm:
                layers.append(nn.BatchNorm2d(c_out))
            return layers + [nn.ReLU(), nn.MaxPool2d(2)]

        self.features = nn.Sequential(*block(1, 32), *block(32, 64))
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(self.dropout),
            nn.Linear(64 * 7 * 7, 128), nn.ReLU(),
            nn.Dropout(self.dropout),
            nn.Linear(128, 10),
        )

    def forward(self, x):
        return self.classifier(self.features(x))
