"""Graph wiring, state, configuration and the command line of the incident agent."""
