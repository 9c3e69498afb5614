"""The Telzino integration: SIP registration status of Telzino AI phone agents."""
