"""Test helpers (not part of the library): users and roles, page runs and a generation row (``review``), images and
files of every kind (``data``), small training sets (``train``)."""
