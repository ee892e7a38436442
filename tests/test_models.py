"""The three models: output shapes, parameter counts worked by hand, LeNet identical to d2l's net_fn."""

import pytest
import torch
from torch import nn

from lrlab import ImprovedCNN, LeNet, SimpleModel
from lrlab.d2l_section import net_fn as d2l_net_fn  # the section's code as published


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


def test_simple_model_shape_and_parameter_count():
    net = SimpleModel()
    assert net(torch.rand(4, 3, 32, 32)).shape == (4, 10)
    # conv 3->16 (3x3): 432+16; conv 16->32: 4608+32; fc 32*8*8=2048 -> 128: 262144+128; 128->10: 1280+10
    assert count(net) == 448 + 4640 + 262_272 + 1290 == 268_650


def test_simple_model_rejects_mnist_shaped_input():
    with pytest.raises(RuntimeError):
        SimpleModel()(torch.rand(2, 1, 28, 28))


def test_improved_cnn_shape_and_parameter_count():
    net = ImprovedCNN()
    assert net(torch.rand(3, 1, 28, 28)).shape == (3, 10)
    # conv 1->32: 288+32; conv 32->64: 18432+64; fc 64*7*7=3136 -> 128: 401408+128; 128->10: 1280+10
    assert count(net) == 320 + 18_496 + 401_536 + 1290 == 421_642
    assert net.dropout == 0.3 and not net.batch_norm


def test_improved_cnn_batch_norm_adds_two_layers():
    net = ImprovedCNN(batch_norm=True)
    bns = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    assert [bn.num_features for bn in bns] == [32, 64]
    assert count(net) == 421_642 + 2 * (32 + 64)
    assert net(torch.rand(3, 1, 28, 28)).shape == (3, 10)


def test_improved_cnn_dropout_acts_in_train_mode_only():
    torch.manual_seed(0)
    net = ImprovedCNN(dropout=0.5)
    drops = [m.p for m in net.modules() if isinstance(m, nn.Dropout)]
    assert drops == [0.5, 0.5]
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
