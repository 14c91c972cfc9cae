"""Tests for mnist_kit.plots, on a PyTorch MLP trained on real MNIST (analysis: tests/test_analysis.py)."""

from __future__ import annotations

import io
import re
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure

from mnist_kit import analysis
from mnist_kit import plots as P
from mnist_kit.history import History
from mnist_kit.plots import learned
from mnist_kit.plots._common import RIGHT, WRONG

N_TEST = 2000  # test images the trained model predicts


def render(fig: Figure) -> Figure:
    """Draw the figure to PNG bytes (catches layout and drawing errors) and return it."""
    assert isinstance(fig, Figure)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=40)
    assert buffer.getvalue().startswith(b"\x89PNG")
    return fig


def same_colour(a, b) -> bool:
    return np.allclose(to_rgba(a), to_rgba(b))


def texts(ax) -> list[str]:
    return [t.get_text() for t in ax.texts]


@pytest.fixture(scope="module")
def trained(mnist):
    """A torch MLP trained 1 epoch on 4,000 real images, with its predictions on 2,000 test images."""
    import torch

    from mnist_kit import torch_kit
    from mnist_kit.data import scale_pixels
    from mnist_kit.device import seed_everything

    (x_train, y_train), (x_test, y_test) = mnist
    seed_everything(0)
    model = torch_kit.mlp()
    val = (x_test[5000:6000], y_test[5000:6000])
    history = torch_kit.fit(
        model, x_train[:4000], y_train[:4000], epochs=1, validation_data=val, verbose=0
    )
    x, y = x_test[:N_TEST], y_test[:N_TEST]
    probs = torch_kit.predict(model, x)
    model.eval()
    with torch.no_grad():
        logits = model(torch.as_tensor(scale_pixels(x))).numpy()
    wrong = np.flatnonzero(probs.argmax(axis=1) != y)
    assert 0 < len(wrong) < N_TEST // 4, "the trained model should be decent but not perfect"
    return SimpleNamespace(model=model, history=history, x=x, y=y, probs=probs, logits=logits)


# ---- samples and predictions ----------------------------------------------------------------


def test_plot_samples_titles_each_digit_with_its_label(trained):
    """Does plot_samples draw n digits titled with their true labels?"""
    fig = render(P.plot_samples(trained.x, trained.y, n=12, cols=6))
    assert len(fig.axes) == 12
    assert [ax.get_title() for ax in fig.axes] == [str(label) for label in trained.y[:12]]
    np.testing.assert_array_equal(fig.axes[3].images[0].get_array(), trained.x[3])


def test_plot_samples_with_predictions_colours_mistakes_red(trained):
    """With predictions, is a wrong digit's title red and a right one's blue?"""
    wrong = int(analysis.find_misclassified(trained.probs, trained.y)[0])
    right = next(
        i for i in range(N_TEST) if i != wrong and trained.probs[i].argmax() == trained.y[i]
    )
    pick = [right, wrong]
    fig = render(
        P.plot_samples(trained.x[pick], trained.y[pick], n=2, predictions=trained.probs[pick])
    )
    right_title, wrong_title = (ax.title for ax in fig.axes)
    assert same_colour(right_title.get_color(), RIGHT)
    assert same_colour(wrong_title.get_color(), WRONG)
    assert (
        wrong_title.get_text() == f"pred {trained.probs[wrong].argmax()}\ntrue {trained.y[wrong]}"
    )


def test_plot_samples_never_asks_for_more_digits_than_exist(trained):
    """Does asking for 50 digits out of 3 draw 3 panels?"""
    assert len(render(P.plot_samples(trained.x[:3], trained.y[:3], n=50)).axes) == 3


def test_plot_prediction_colours_predicted_and_true_bars(trained):
    """On a known mistake, is the predicted bar red, the true bar blue, the rest grey?"""
    i = int(analysis.find_misclassified(trained.probs, trained.y)[0])
    predicted, true = int(trained.probs[i].argmax()), int(trained.y[i])
    fig = render(P.plot_prediction(trained.x[i], trained.probs[i], true_label=true))
    assert len(fig.axes) == 2
    bars = fig.axes[1].patches[:10]
    np.testing.assert_allclose([b.get_height() for b in bars], trained.probs[i], atol=1e-6)
    assert same_colour(bars[predicted].get_facecolor(), WRONG)
    assert same_colour(bars[true].get_facecolor(), RIGHT)
    others = [b for k, b in enumerate(bars) if k not in (predicted, true)]
    assert not any(same_colour(b.get_facecolor(), c) for b in others for c in (RIGHT, WRONG))
    title = fig.axes[1].title
    assert title.get_text() == f"predicted {predicted} ({trained.probs[i, predicted]:.1%})"
    assert same_colour(title.get_color(), WRONG)


def test_plot_prediction_accepts_logits(trained):
    """Do logits give the same bar heights as the probabilities?"""
    fig = render(P.plot_prediction(trained.x[0], trained.logits[0], true_label=trained.y[0]))
    heights = [b.get_height() for b in fig.axes[1].patches[:10]]
    np.testing.assert_allclose(heights, trained.probs[0], atol=1e-5)


def test_plot_predictions_titles_are_blue_when_right_red_when_wrong(trained):
    """Is the title of a known-wrong example red and of every right one blue?"""
    wrong = int(analysis.find_misclassified(trained.probs, trained.y)[0])
    pick = np.r_[np.arange(5), wrong]
    fig = render(P.plot_predictions(trained.x[pick], trained.probs[pick], trained.y[pick], n=6))
    assert len(fig.axes) == 12  # one digit and one bar chart per example
    image_axes = fig.axes[0::2]
    for ax, i in zip(image_axes, pick, strict=True):
        colour = WRONG if trained.probs[i].argmax() != trained.y[i] else RIGHT
        assert same_colour(ax.title.get_color(), colour), ax.get_title()
        assert ax.get_title().endswith(f"true {trained.y[i]}")
    assert same_colour(image_axes[-1].title.get_color(), WRONG)


# ---- mistakes -------------------------------------------------------------------------------


def test_plot_misclassified_sorts_by_confidence(trained):
    """Are the most confident mistakes shown first, each with predicted, true label and confidence?"""
    assert P.misclassified is P.find_misclassified is analysis.find_misclassified  # re-exported
    wrong = analysis.find_misclassified(trained.probs, trained.y)
    fig = render(P.plot_misclassified(trained.x, trained.probs, trained.y, n=10))
    assert len(fig.axes) == min(10, len(wrong))
    shown = [int(re.search(r"#(\d+)", ax.get_title()).group(1)) for ax in fig.axes]
    assert set(shown) <= set(wrong.tolist())
    confidence = trained.probs.max(axis=1)
    assert list(confidence[shown]) == sorted(confidence[shown], reverse=True)
    assert confidence[shown[0]] == confidence[wrong].max()
    i = shown[0]
    assert fig.axes[0].get_title() == (
        f"pred {trained.probs[i].argmax()} ({confidence[i]:.0%})\ntrue {trained.y[i]}  #{i}"
    )
    assert f"{len(wrong)} of {N_TEST:,} misclassified" in fig.get_suptitle()


def test_plot_misclassified_by_index_keeps_dataset_order(trained):
    """With sort="index", are the first mistakes in dataset order?"""
    wrong = analysis.find_misclassified(trained.probs, trained.y)
    fig = render(P.plot_misclassified(trained.x, trained.probs, trained.y, n=4, sort="index"))
    shown = [int(re.search(r"#(\d+)", ax.get_title()).group(1)) for ax in fig.axes]
    assert shown == wrong[:4].tolist()
    with pytest.raises(ValueError, match="confidence, index"):
        P.plot_misclassified(trained.x, trained.probs, trained.y, sort="size")


def test_plot_misclassified_all_correct_shows_a_message(trained):
    """When every prediction is right, is the result a figure with a message rather than a crash?"""
    perfect = np.eye(10)[trained.y[:30]]
    fig = render(P.plot_misclassified(trained.x[:30], perfect, trained.y[:30]))
    assert len(fig.axes) == 1
    assert "all 30 predictions are correct" in " ".join(texts(fig.axes[0]))


def test_plot_confusion_matrix_annotates_counts_and_calls_out_pairs(trained):
    """Do the heat map's numbers equal the counts, with the top pairs outlined and listed?"""
    cm = analysis.confusion_matrix(trained.y, trained.probs)
    fig = render(P.plot_confusion_matrix(trained.y, trained.probs, k=3))
    heat, listing = fig.axes
    np.testing.assert_array_equal(heat.images[0].get_array(), cm)
    cells = {
        (round(t.get_position()[1]), round(t.get_position()[0])): t.get_text() for t in heat.texts
    }
    assert cells == {(t, p): str(cm[t, p]) for t in range(10) for p in range(10) if cm[t, p]}
    pairs = analysis.most_confused_pairs(cm, k=3)
    outlined = {(round(r.get_y() + 0.5), round(r.get_x() + 0.5)) for r in heat.patches}
    assert outlined == {(t, p) for t, p, _ in pairs}
    listed = texts(listing)[0]
    t, p, count = pairs[0]
    assert listed.splitlines()[0].startswith(f"true {t} → pred {p}: {count}")
    accuracy = np.trace(cm) / cm.sum()
    assert f"accuracy {accuracy:.2%}" in heat.get_title()


def test_plot_confusion_matrix_normalised_rows_sum_to_one(trained):
    """With normalize=True, does each row of the heat map hold fractions summing to 1?"""
    fig = render(P.plot_confusion_matrix(trained.y, trained.probs, normalize=True))
    shown = np.asarray(fig.axes[0].images[0].get_array())
    np.testing.assert_allclose(shown.sum(axis=1), 1.0)
    cm = analysis.confusion_matrix(trained.y, trained.probs)
    assert f"{cm[0, 0] / cm[0].sum():.2f}" in texts(fig.axes[0])


# ---- histories ------------------------------------------------------------------------------


def test_plot_history_draws_train_and_validation_curves(trained):
    """Does one History give two panels with a train and a val curve each, last values in the legend?"""
    fig = render(P.plot_history(trained.history))
    assert [ax.get_title() for ax in fig.axes] == ["Accuracy", "Loss"]
    h = trained.history.history
    for ax, metric in zip(fig.axes, ("accuracy", "loss"), strict=True):
        train_line, val_line = ax.get_lines()
        np.testing.assert_allclose(train_line.get_ydata(), h[metric])
        np.testing.assert_allclose(val_line.get_ydata(), h[f"val_{metric}"])
        legend = [t.get_text() for t in ax.get_legend().get_texts()]
        assert legend == [
            f"train (last {h[metric][-1]:.4f})",
            f"val (last {h[f'val_{metric}'][-1]:.4f})",
        ]


def test_plot_history_accepts_keras_history_dict_and_several_runs():
    """Do a Keras-style History, a kit History and a dict overlay as labelled runs?"""
    metrics = {"loss": [0.9, 0.5], "accuracy": [0.7, 0.85], "val_loss": [0.6, 0.4]}
    # What a keras.callbacks.History holds, without paying for a TensorFlow import.
    keras_like = SimpleNamespace(history=dict(metrics), epoch=[0, 1])
    runs = [keras_like, History(metrics), metrics]
    fig = render(P.plot_history(runs, labels=["keras", "kit", "dict"]))
    loss_axis = fig.axes[1]
    assert len(loss_axis.get_lines()) == 6  # train and val per run
    legend = " ".join(t.get_text() for t in loss_axis.get_legend().get_texts())
    assert all(name in legend for name in ("keras: train", "kit: val", "dict: val (last 0.4000)"))
    assert len(fig.axes[0].get_lines()) == 3  # no val_accuracy recorded: train curves only
    named = render(P.plot_history({"a": metrics, "b": History(metrics)}))
    assert "b: train" in " ".join(t.get_text() for t in named.axes[0].get_legend().get_texts())


def test_plot_history_explains_bad_input():
    """Are a missing metric and a wrong number of labels reported with what to do?"""
    with pytest.raises(ValueError, match="recorded metrics: loss"):
        P.plot_history({"loss": [1.0]})
    with pytest.raises(ValueError, match="one label per run"):
        P.plot_history([{"loss": [1.0]}] * 2, labels=["only one"], metrics=("loss",))
    with pytest.raises(TypeError, match="History"):
        P.plot_history([42], metrics=("loss",))


def test_compare_and_plot_optimizers_on_real_mnist(mnist):
    """Does compare_optimizers train one History per optimizer, with Adam ahead of plain SGD?"""
    (x_train, y_train), (x_test, y_test) = mnist
    small = ((x_train[:12000], y_train[:12000]), (x_test[:1000], y_test[:1000]))
    histories = P.compare_optimizers(
        "torch", names=("sgd", "adam"), epochs=1, train_fraction=0.25, data=small
    )
    assert list(histories) == ["sgd", "adam"]
    assert all(len(h.history["val_accuracy"]) == 1 for h in histories.values())
    # At lr=1e-3 and 75 steps of 32 images, SGD without momentum has barely started; Adam is well past 80%.
    assert (
        histories["adam"].history["val_accuracy"][0] > histories["sgd"].history["val_accuracy"][0]
    )
    fig = render(P.plot_optimizers(histories))
    assert "sgd, adam" in fig.get_suptitle()
    assert len(fig.axes[0].get_lines()) == 4


# ---- what the network learned ---------------------------------------------------------------


def test_dense_weights_as_images_reproduce_the_first_layer(trained):
    """Does each 28x28 weight image, dotted with a digit, give that unit's pre-activation?"""
    import torch

    from mnist_kit.data import scale_pixels

    weights = learned.first_dense_weights(trained.model)
    digit = scale_pixels(trained.x[:1])
    first = trained.model[1]  # Flatten, then the first Linear
    with torch.no_grad():
        expected = first(torch.as_tensor(digit).reshape(1, -1))[0].numpy()
    got = (weights * digit[0]).sum(axis=(1, 2)) + first.bias.detach().numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    fig = render(P.plot_dense_weights(trained.model, n=16))
    assert len(fig.axes) == 16
    np.testing.assert_array_equal(fig.axes[5].images[0].get_array(), weights[5])
    assert "16 of 128 units" in fig.get_suptitle()


def test_conv_filters_and_feature_maps_agree_with_a_hand_convolution(mnist):
    """Does filter f slid over the digit (plus bias, then ReLU) give feature map f, in torch?"""
    from mnist_kit import torch_kit
    from mnist_kit.device import seed_everything

    seed_everything(1)
    model = torch_kit.cnn()
    _check_filters_against_maps(model, mnist[1][0][0], bias=model[0].bias.detach().numpy())
    with pytest.raises(ValueError, match="plot_conv_filters"):
        learned.first_dense_weights(model)
    with pytest.raises(ValueError, match="plot_dense_weights"):
        P.plot_conv_filters(torch_kit.mlp())


def test_learned_plots_work_for_keras_models(mnist):
    """Do the same three plots read a Keras MLP and CNN the same way?"""
    from mnist_kit import keras_kit

    digit = mnist[1][0][0]
    mlp = keras_kit.mlp()
    dense = next(layer for layer in mlp.layers if layer.__class__.__name__ == "Dense")
    kernel, bias = dense.get_weights()
    weights = learned.first_dense_weights(mlp)
    scaled = digit.astype(np.float32) / 255
    expected = np.maximum(scaled.reshape(-1) @ kernel + bias, 0)  # Dense applies its ReLU
    got = np.maximum((weights * scaled).sum(axis=(1, 2)) + bias, 0)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    assert len(render(P.plot_dense_weights(mlp, n=8)).axes) == 8
    cnn = keras_kit.cnn()
    conv = next(layer for layer in cnn.layers if layer.__class__.__name__ == "Conv2D")
    _check_filters_against_maps(cnn, digit, bias=conv.get_weights()[1])


def _check_filters_against_maps(model, digit: np.ndarray, bias: np.ndarray) -> None:
    kernels = learned.first_conv_filters(model)
    assert kernels.shape == (32, 1, 3, 3)
    maps = learned.feature_maps(model, digit)
    assert maps.shape == (32, 26, 26)
    scaled = digit.astype(np.float32) / 255
    for f, (r, c) in [(0, (5, 5)), (7, (12, 9)), (31, (20, 14))]:
        by_hand = max(0.0, float((kernels[f, 0] * scaled[r : r + 3, c : c + 3]).sum() + bias[f]))
        assert maps[f, r, c] == pytest.approx(by_hand, rel=1e-4, abs=1e-5)
    filters = render(P.plot_conv_filters(model, n=None))
    assert len(filters.axes) == 32
    np.testing.assert_array_equal(filters.axes[7].images[0].get_array(), kernels[7, 0])
    feature = render(P.plot_feature_maps(model, digit, n=8))
    assert len(feature.axes) == 9  # the input plus 8 maps
    assert feature.axes[0].get_title() == "input"
    np.testing.assert_allclose(feature.axes[3].images[0].get_array(), maps[2])


def test_framework_detection_rejects_other_objects():
    """Is an object that is neither a torch nor a Keras model refused with a message?"""
    with pytest.raises(ValueError, match="nn.Module or a Keras model"):
        P.plot_dense_weights(object())


# ---- activations, headless behaviour --------------------------------------------------------


def test_plot_activations_draws_the_numpy_definitions():
    """Are ReLU, sigmoid and tanh drawn from their formulas, and softmax bars summing to 1?"""
    logits = (2.0, 1.0, 0.1)
    fig = render(P.plot_activations(logits=logits))
    assert len(fig.axes) == 4
    assert [ax.get_title().split(":")[0] for ax in fig.axes] == [
        "ReLU",
        "sigmoid",
        "tanh",
        "softmax",
    ]
    relu_line, sigmoid_line, tanh_line = (ax.get_lines()[0] for ax in fig.axes[:3])
    z = relu_line.get_xdata()
    np.testing.assert_allclose(relu_line.get_ydata(), np.maximum(z, 0))
    np.testing.assert_allclose(sigmoid_line.get_ydata(), 1 / (1 + np.exp(-z)))
    np.testing.assert_allclose(tanh_line.get_ydata(), np.tanh(z))
    bars = fig.axes[3].containers[1]  # the softmax bars (the first container holds the logits)
    heights = np.array([b.get_height() for b in bars])
    np.testing.assert_allclose(heights, np.exp(logits) / np.exp(logits).sum())
    assert heights.sum() == pytest.approx(1.0)


def test_plots_leave_no_pyplot_figure_open(trained):
    """After every kind of plot, does pyplot hold no open figure?"""
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    P.plot_samples(trained.x, trained.y)
    P.plot_predictions(trained.x, trained.probs, trained.y, n=4)
    P.plot_confusion_matrix(trained.y, trained.probs)
    P.plot_activations()
    assert plt.get_fignums() == before


def test_figures_show_in_jupyter_as_png(trained):
    """Does a returned figure offer a PNG to Jupyter even when pyplot was never imported?"""
    png = P.plot_samples(trained.x, trained.y, n=3)._repr_png_()
    assert png.startswith(b"\x89PNG")


def test_importing_plots_loads_no_framework_and_no_pyplot():
    """Does `import mnist_kit.plots` stay light (no torch, TensorFlow or pyplot)?"""
    code = (
        "import sys, mnist_kit.plots, mnist_kit.analysis;"
        "print(sorted(m for m in ('torch', 'tensorflow', 'keras', 'matplotlib.pyplot') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
