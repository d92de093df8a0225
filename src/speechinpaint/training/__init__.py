"""Training, the only part of the package that imports Lightning: crops, loss terms, the two networks'
LightningModules, the optional discriminator, and the Trainer set-up that `speechinpaint train` runs."""
