"""Visible tests, one module per assignment; students run them with `check(...)`.

Hidden tests are not here: they live in the teacher's `autograder/` folder, whose
modules import these and add their own.
"""
