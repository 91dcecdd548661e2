"""The exchange agreements and their vocabulary as data files, the policy compiler and decide()."""
