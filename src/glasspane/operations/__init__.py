"""The operations catalogue (see catalogue.py) and the operations of each kind of object."""
