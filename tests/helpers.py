"""Small helpers shared by test modules (fixtures live in conftest.py)."""

from __future__ import annotations


def stored_weight_dtypes(keras_file) -> set:
    """The dtypes of the weight arrays stored inside a ``.keras`` file."""
    import zipfile

    import h5py

    with zipfile.ZipFile(keras_file) as archive, h5py.File(archive.open("model.weights.h5"), "r") as weights:
        dtypes = set()
        weights.visititems(lambda name, obj: dtypes.add(obj.dtype) if isinstance(obj, h5py.Dataset) else None)
    return dtypes
