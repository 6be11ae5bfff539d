"""Templates: base disk images stored on a host, from which VMs are cloned."""
