"""A Pipedrive sync in its own process, for the kill test: python -m tests.sync_worker RAW_DIR PAGE_LIMIT"""

import os
import sys

from contact_register.sync.pipedrive.sync import sync_pipedrive
from contact_register.sync.raw_store import open_raw_store
from connectors.pipedrive import PipedriveClient

if __name__ == "__main__":
    raw_dir, page_limit = sys.argv[1], int(sys.argv[2])
    client = PipedriveClient(os.environ["PIPEDRIVE_BASE_URL"], os.environ["PIPEDRIVE_API_TOKEN"], page_limit=page_limit)
    with open_raw_store(raw_dir, "pipedrive") as store:
        sync_pipedrive(client, store)
