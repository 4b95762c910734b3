"""Encoders shared by understanding (bot.nlu) and search (bot.knowledge): where their weights come
from (`paths`), the intent network (`network`), a trained model's manifest (`manifest`), the
multilingual e5 engine (`e5`) and the ONNX int8 export and runtime (`onnx`).

This package sits below both users: it imports neither, nor anything above them.
"""
