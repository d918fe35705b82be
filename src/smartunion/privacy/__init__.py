"""Personal-information rights (PIPL 第四章): consent, access, correction, deletion, retention."""
