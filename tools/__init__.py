"""Repository tooling (artifact builds): not part of the callback-bridge wheel or Lambda zip."""
