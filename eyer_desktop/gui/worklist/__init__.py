"""The worklist dialog: find a scheduled patient and import images for them."""
