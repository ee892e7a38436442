"""The three models: identical to their sources' code (d2l's net_fn, the two tutorials' classes), parameter counts by hand."""

import pytest
import torch
from torch import nn

from lrlab.course import ImprovedCNN, LeNet, SimpleModel
from lrlab.sources.d2l_section import net_fn as d2l_net_fn  # the section's code as published


def count(net):
    return sum(p.numel() for p in net.parameters())


def test_lenet_parameter_count_by_hand():
    # conv1 6*1*5*5+6, conv2 16*6*5*5+16, fc 400*120+120, 120*84+84, 84*10+10
    by_hand = (150 + 6) + (2400 + 16) + (48000 + 120) + (10080 + 84) + (840 + 10)
    assert by_hand == 61_706
    assert count(LeNet()) == 61_706


def test_lenet_is_d2l_net_fn_layer_for_layer():
    ours, ref = LeNet(), d2l_net_fn()
    assert isinstance(ours, nn.Sequential)
    assert [repr(m) for m in ours] == [repr(m) for m in ref]
    assert {k: v.shape for k, v in ours.state_dict().items()} == {k: v.shape for k, v in ref.state_dict().items()}


def test_lenet_same_seed_same_init_and_outputs_as_d2l():
    torch.manual_seed(7)
    ours = LeNet()
    torch.manual_seed(7)
    ref = d2l_net_fn()
    for (k, a), (_, b) in zip(ours.state_dict().items(), ref.state_dict().items()):
        assert torch.equal(a, b), k
    X = torch.rand(5, 1, 28, 28)
    assert torch.equal(ours(X), ref(X))


def test_lenet_shapes_through_the_layers():
    X = torch.rand(2, 1, 28, 28)
    shapes = []
    for layer in LeNet():
        X = layer(X)
        shapes.append(tuple(X.shape[1:]))
    assert shapes[2] == (6, 14, 14) and shapes[5] == (16, 5, 5) and shapes[6] == (400,) and shapes[-1] == (10,)


# ------------------------------------------------------------------------------------------------
# The two tutorials' classes as published (../shared/seeds; re-indented, comments dropped). They are
# the independent reference: lrlab's models must have the same layers, parameters and outputs.
# ------------------------------------------------------------------------------------------------

import torch.nn.functional as F  # noqa: E402  (the MNIST tutorial's import)


class PublishedSimpleModel(nn.Module):  # warmup_multifactor_tutorial.zh.txt
    def __init__(self):
        super(PublishedSimpleModel, self).__init__()
        self.conv1 = nn.Conv2d(3, 16, kernel_size=3, stride=1, padding=1)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(16, 32, kernel_size=3, stride=1, padding=1)
        self.fc = nn.Linear(32 * 32 * 32, 10)

    def forward(self, x):
        x = self.conv1(x)
        x = self.relu(x)
        x = self.conv2(x)
        x = self.relu(x)
        x = x.view(x.size(0), -1)
        x = self.fc(x)
        return x


class PublishedImprovedCNN(nn.Module):  # mnist_step_cosine_tutorial.zh.txt
    def __init__(self):
        super(PublishedImprovedCNN, self).__init__()
        self.conv1 = nn.Conv2d(1, 16, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, kernel_size=3, padding=1)
        self.dropout = nn.Dropout(0.3)
        self.pool = nn.MaxPool2d(2, 2)
        self.fc1 = nn.Linear(32 * 7 * 7, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = self.pool(x)
        x = F.relu(self.conv2(x))
        x = self.pool(x)
        x = self.dropout(x)
        x = x.view(-1, 32 * 7 * 7)
        x = F.relu(self.fc1(x))
        x = self.dropout(x)
        x = self.fc2(x)
        return x


@pytest.mark.parametrize("ours, published, shape, params", [
    (SimpleModel, PublishedSimpleModel, (4, 3, 32, 32), 332_778),
    (ImprovedCNN, PublishedImprovedCNN, (4, 1, 28, 28), 206_922),
])
def test_models_are_the_tutorials_code_layer_for_layer(ours, published, shape, params):
    torch.manual_seed(3)
    a = ours()
    torch.manual_seed(3)
    b = published()
    assert [(n, repr(m)) for n, m in a.named_children()] == [(n, repr(m)) for n, m in b.named_children()]
    assert count(a) == count(b) == params
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k  # same seed, same initial weights: same registration order
    X = torch.randn(*shape)
    a.eval(), b.eval()
    assert torch.equal(a(X), b(X))
    a.train(), b.train()
    torch.manual_seed(5)
    ya = a(X)
    torch.manual_seed(5)
    assert torch.equal(ya, b(X))  # dropout draws the same masks in the same order


def test_parameter_counts_by_hand():
    # SimpleModel: conv 3->16 (3x3): 432+16; conv 16->32: 4608+32; fc 32*32*32 -> 10: 327680+10
    assert count(SimpleModel()) == 448 + 4640 + 327_690 == 332_778
    # ImprovedCNN: conv 1->16: 144+16; conv 16->32: 4608+32; fc 32*7*7=1568 -> 128: 200704+128; 128->10: 1280+10
    assert count(ImprovedCNN()) == 160 + 4640 + 200_832 + 1290 == 206_922


def test_models_take_channels_last_input():
    # lrlab.train stores conv nets and batches channels_last on the CPU; the tutorials' .view would fail there.
    for net, shape in ((SimpleModel(), (2, 3, 32, 32)), (ImprovedCNN(), (2, 1, 28, 28))):
        X = torch.randn(*shape)
        net.eval()
        expected = net(X)
        net.to(memory_format=torch.channels_last)
        assert torch.allclose(net(X.contiguous(memory_format=torch.channels_last)), expected, atol=1e-6)


def test_simple_model_rejects_mnist_shaped_input():
    with pytest.raises(RuntimeError):
        SimpleModel()(torch.rand(2, 1, 28, 28))


def test_improved_cnn_batch_norm_exercise_adds_two_layers():
    net = ImprovedCNN(batch_norm=True)
    bns = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    assert [bn.num_features for bn in bns] == [16, 32]
    assert count(net) == 206_922 + 2 * (16 + 32)
    assert net(torch.rand(3, 1, 28, 28)).shape == (3, 10)
    assert not ImprovedCNN().batch_norm


def test_improved_cnn_dropout_acts_in_train_mode_only():
    torch.manual_seed(0)
    net = ImprovedCNN(dropout=0.5)
    drops = [m.p for m in net.modules() if isinstance(m, nn.Dropout)]
    assert drops == [0.5] and ImprovedCNN().dropout.p == 0.3
    X = torch.rand(8, 1, 28, 28)
    net.eval()
    assert torch.equal(net(X), net(X))
    net.train()
    assert not torch.equal(net(X), net(X))
    no_dropout = ImprovedCNN(dropout=0.0).train()
    assert torch.equal(no_dropout(X), no_dropout(X))


@pytest.mark.parametrize("bad", [-0.1, 1.0, 1.5, "0.3", True])
def test_improved_cnn_bad_dropout_names_the_parameter(bad):
    with pytest.raises(ValueError, match="dropout"):
        ImprovedCNN(dropout=bad)
