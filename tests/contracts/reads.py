"""What the connectors read of an answer: a decoded JSON object that reports every key the code
looks up (``[]``, ``get`` and ``in``), so a contract test can hold the reads to the vendor's
published fields. Each contract test says in ``note`` what it does with a read."""


class ReadNoting(dict):
    def note(self, key) -> None:
        raise NotImplementedError

    def __getitem__(self, key):
        self.note(key)
        return super().__getitem__(key)

    def get(self, key, default=None):
        self.note(key)
        return super().get(key, default)

    def __contains__(self, key) -> bool:
        self.note(key)
        return super().__contains__(key)
