"""Mirror houses: the testbed of PRISM's premise, where which expert trajectories conflict with the model's prior is known."""
