"""Policy rules that check declared resources against host inventory before anything is applied."""
