"""What the tests share: service starters (`services`), scenario helpers (`support`),
receivers of notifications (`receivers`), the fault bench (`fault_bench`), paths."""
