"""Result files: writing them in mteb's layout with the run record, reading them back (cmteb's, mteb's and
mteb 1's shapes), and the per-item values kept beside them."""
