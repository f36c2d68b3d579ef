"""The Servers page, after the camera's Synchronization > Servers screen."""
