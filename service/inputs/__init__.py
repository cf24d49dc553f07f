"""A request's inputs turned into the generator's: seeds and seeded latents, latent walks between keyframes."""
