"""Hypervisor hosts behind one small interface (`base.HypervisorDriver`); the libvirt driver
is the first, XenAPI joins it as a peer."""
