"""it-support-agent: an incident-response agent for Level-1 operations (one namespace over the repository's folders)."""
