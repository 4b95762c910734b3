"""Conversation tests: whole dialogues with expectations per turn, in our format or as Rasa test
stories, run against the pipeline in process or against a served bot (`supportbot test`)."""
