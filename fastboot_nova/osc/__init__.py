"""The ``openstack fastboot`` OSC plugin."""
