"""glasspane: build VM templates once, deliver them in every hypervisor's format, and manage
hosts, VMs and the containers inside them from one pane of glass."""

__version__ = "0.1.0"
