"""Telling customers by e-mail: confirmation links (:mod:`.mail`) and security notices
(:mod:`.notices`). The e-mail address on file is the out-of-band channel that a stolen
password or chat token does not give an attacker."""
