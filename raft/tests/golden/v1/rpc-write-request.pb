
goldenk7/{"ReleaseHold":{"hold_id":"h1","user_id":"u1"}}