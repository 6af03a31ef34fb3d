"""The suppression list (keyed hashes of erased and banned people's identifiers)
and the nightly check that keeps them out of every system."""
