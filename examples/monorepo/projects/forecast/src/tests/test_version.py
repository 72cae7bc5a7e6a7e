import forecast


def test_version_is_set():
    assert forecast.__version__
