"""The autograder's pytest set-up: every test takes the `submission` fixture from the kit's plugin."""

pytest_plugins = ["mnist_kit.grading.pytest_plugin"]
