"""Test and benchmark helpers that ship with notify (the fake AWS endpoint lives in `notify.testing.fake_aws`)."""
