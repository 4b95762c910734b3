"""Running real Rasa 3 projects on supportbot: their domain, stories and custom actions."""
