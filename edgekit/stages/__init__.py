"""Pipeline stages: plain functions from one frozen artifact to the next.

train -> export -> compile (per target) -> validate. Stages never import each
other or any backend module; they share only artifact and config types.
"""
