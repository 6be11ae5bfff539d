"""The inventory: SQL models, migrations, sync from the drivers, tasks, events, audit."""
