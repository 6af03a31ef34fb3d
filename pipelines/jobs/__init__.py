"""Data-subject jobs: ``subject_export`` (GDPR art. 15). Erasure and marketing ban come next."""
